Signature-Version: 1
Key-ID: 928fb0cca01a9828
Public-Key: nh8kTBVHyadNRgJKFcu/GnOpSwylV17XBkxyeGTcuow=
Manifest-Digest: 85c64ef2c6f41ca056dc12403dc76cfe23253cf5dfd522c8676455d69171e3d5
Signed-At: 2026-01-02T03:04:06+00:00
Signature: iuCDX3xPsPbNGd5oe625b8j7/tA2Y5B0zEpRQGMgJ93zQXRs5L1FkmKHtpixm9w3jf9PY8eM+YHsOt2e+mHsCw==
