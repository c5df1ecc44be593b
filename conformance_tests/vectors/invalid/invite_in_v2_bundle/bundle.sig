Signature-Version: 1
Key-ID: 928fb0cca01a9828
Public-Key: nh8kTBVHyadNRgJKFcu/GnOpSwylV17XBkxyeGTcuow=
Manifest-Digest: 4bdbdc7fb0980b835c1a2326cf61003a3d29f3e9bb6b162555ae35a2d212709d
Signed-At: 2026-01-02T03:04:06+00:00
Signature: sfMZmAzGERo2QBeANLVcp3s2jSlPt62Qptvg1VXhvjBsU7LgH1q0zOUoCcyyXDfpodtmW7K1jUNNv4AknyVvBg==
