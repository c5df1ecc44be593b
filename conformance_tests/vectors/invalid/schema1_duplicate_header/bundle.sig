Signature-Version: 1
Key-ID: 928fb0cca01a9828
Public-Key: nh8kTBVHyadNRgJKFcu/GnOpSwylV17XBkxyeGTcuow=
Manifest-Digest: 367e57e0114d32957a68a87c6d1732d1c88609c511f0dccdfb579084881c9fa7
Signed-At: 2026-01-02T03:04:06+00:00
Signature: gsSAxDk75nmfLfMPNsgVOQvna9GQkXZTfHeGV/fPacium/uwUqdvhKcLN5/8M3Zr1ZyMoHF8CbJ8dwcJx4h9AA==
