Signature-Version: 1
Key-ID: 690ce8c348ab0a1f
Public-Key: c/FSVs0Bq4pXc7IANoZOUKK7rmAlTpBHdW2N18HpYjM=
Manifest-Digest: a830a5bdd1dd0bf0f19a09d62f44ed091fc69b1cc5d6939e4e89c08733174bcd
Signed-At: 2026-01-02T03:04:06+00:00
Signature: mWIsCgpS8vERODUB5xpKYg17FbizuoxuJNi6XmIQx1mrKn7WrHNOUZNnmUn7QxVLNepl+W64qaeVc3p4QVggDg==
