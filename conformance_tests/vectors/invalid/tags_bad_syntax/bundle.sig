Signature-Version: 1
Key-ID: 928fb0cca01a9828
Public-Key: nh8kTBVHyadNRgJKFcu/GnOpSwylV17XBkxyeGTcuow=
Manifest-Digest: 59878e4e01830a32e80ec34f29d59591b9fd70bd9ad216254d9917255e48b452
Signed-At: 2026-01-02T03:04:06+00:00
Signature: WGoizE3t87t1sxE5q/HL0BYs/NBZwsnI8jQB7jvFK4bzJjAk2bVlcJHsV+jO8tFt/MXRkgGXQFwGogKP/T74Dw==
