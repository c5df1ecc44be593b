Signature-Version: 1
Key-ID: 928fb0cca01a9828
Public-Key: nh8kTBVHyadNRgJKFcu/GnOpSwylV17XBkxyeGTcuow=
Manifest-Digest: ee670b7e672fae6b3ef6a63daf13b5c07a47c66c0d423020ff5d0aeba91109ac
Signed-At: 2026-01-02T03:04:06+00:00
Signature: xzHNa+Cz1jKMtu/6287jEcO2IMJxt2LbkdLsHcedXFmEFNNvQwxLNlV/AbhR4stgxh6T9ojRwgmIZdr+PRDfCg==
