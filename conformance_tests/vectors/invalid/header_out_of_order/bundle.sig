Signature-Version: 1
Key-ID: 928fb0cca01a9828
Public-Key: nh8kTBVHyadNRgJKFcu/GnOpSwylV17XBkxyeGTcuow=
Manifest-Digest: b1967f4cb03eb83355e5ee3bb92eb7d0878498e43d2ae21c3fa9c065d01993df
Signed-At: 2026-01-02T03:04:06+00:00
Signature: sbgi9NittT+4Ztr/6+sus4FnBMDvlPlgY7OZHOMnL8B9feGrexLFy3sQoBagdQsTJq5tUcfQhnyJaRVj+Vr5DA==
