Signature-Version: 1
Key-ID: 928fb0cca01a9828
Public-Key: nh8kTBVHyadNRgJKFcu/GnOpSwylV17XBkxyeGTcuow=
Manifest-Digest: afa0dd2537bd029e9ce0bc580f05a94920db51c3c5bb2c674ec29e573d526841
Signed-At: 2026-01-02T03:04:06+00:00
Signature: anLB/2IFArSf0zfrEDwda8PVnhzOkjAqvmbjKjwobQjOXDqFqolsRaPWXAvazG5QPqD2lc0AZPtpCRYSdSpICw==
