Signature-Version: 1
Key-ID: 928fb0cca01a9828
Public-Key: nh8kTBVHyadNRgJKFcu/GnOpSwylV17XBkxyeGTcuow=
Manifest-Digest: 67a6c6b3fabf281795a5cbd51eeae671ec025c0b64d2bb61cc85676a6d0558f1
Signed-At: 2026-01-02T03:04:06+00:00
Signature: tfcVMtTeh+nw8GDX11+PPfLQiOvbRMfMcxGR6BncbPeRqpBq5boTS9S/YBYyD5DY7GV0WjBqcghdG67H3SjVDA==
