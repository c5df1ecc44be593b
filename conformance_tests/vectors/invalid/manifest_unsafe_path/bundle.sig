Signature-Version: 1
Key-ID: 928fb0cca01a9828
Public-Key: nh8kTBVHyadNRgJKFcu/GnOpSwylV17XBkxyeGTcuow=
Manifest-Digest: f345bf209798836f7941fb931e7572eab5cf2b88ac762c5d08065237e6cb2ada
Signed-At: 2026-01-02T03:04:06+00:00
Signature: 6f9kY5TlTMgfICA8QJj60q+9J1T6SkxkoS4cuJ+BFlCKpHjFell0OlfRvXYuLYBM2XGQUPEasn05DkhhRfhTCg==
