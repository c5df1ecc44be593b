Signature-Version: 1
Key-ID: 690ce8c348ab0a1f
Public-Key: c/FSVs0Bq4pXc7IANoZOUKK7rmAlTpBHdW2N18HpYjM=
Manifest-Digest: e98de9d9210f4563a52537d48a557880b273b77e606a665ebdca2e1fb72e17b8
Signed-At: 2026-01-02T03:04:06+00:00
Signature: +/RbHyIQEsaPMXsRMwBW1tSNqg/CDeiCyVYF0D/KrIfWjkeBeZyWznzzZdxPtYsRZPh6LF8v/a4yKcGqorYfAA==
