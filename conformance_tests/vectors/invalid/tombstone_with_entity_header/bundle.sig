Signature-Version: 1
Key-ID: 928fb0cca01a9828
Public-Key: nh8kTBVHyadNRgJKFcu/GnOpSwylV17XBkxyeGTcuow=
Manifest-Digest: 6e992b5ccebfeb45c11df5fcb9fcfa692a5d38be54c9c7f79a6cb8fe4b8c3ab2
Signed-At: 2026-01-02T03:04:06+00:00
Signature: +N2ZjBYECpwhdClWeU9+YLI6McQeVDjpQizFox1PlKKE3kFz/XZhcDEyonsoX8lmIb7S+MIDX4rcHhmYNKfuCw==
