Signature-Version: 1
Key-ID: 928fb0cca01a9828
Public-Key: nh8kTBVHyadNRgJKFcu/GnOpSwylV17XBkxyeGTcuow=
Manifest-Digest: f2d7b9e2c8760bc992e7123b4ebb9fa78cfa51dc741352c6aef7c43addc3303e
Signed-At: 2026-01-02T03:04:06+00:00
Signature: iuZYoyELpLQYJLUmDf8oSdBOzanVT+x59DIKE9Ovi9LOyqg5YEhZyMeGRwHaUDeBe4isrn2wHPlEFMqdSYuFAw==
