Signature-Version: 1
Key-ID: 928fb0cca01a9828
Public-Key: nh8kTBVHyadNRgJKFcu/GnOpSwylV17XBkxyeGTcuow=
Manifest-Digest: 498b7ec4478efc8229b90e800bfd8b08029f8f61c81c23549215edad6026e21e
Signed-At: 2026-01-02T03:04:06+00:00
Signature: iV3UuLifsm1wt9vdKOPbAfjsQDHIThYuGXJKoeEDhVikjqRUtHbQPNsyBrsr3AftpbavUEQuk73rRUmsIXgrDQ==
