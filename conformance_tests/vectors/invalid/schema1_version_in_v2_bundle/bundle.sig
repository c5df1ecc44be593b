Signature-Version: 1
Key-ID: 928fb0cca01a9828
Public-Key: nh8kTBVHyadNRgJKFcu/GnOpSwylV17XBkxyeGTcuow=
Manifest-Digest: a36513eeeef9aae9bd731d61c40a6ea35430dd3f7d0ce9db55701001e19d4d57
Signed-At: 2026-01-02T03:04:06+00:00
Signature: XxjA8MDdU5my0ySi2L4G1npg3WIvYL1whuzM92TAZyClh3GErZ2ISSktH5vlxN7w1TShT0U56JAHH89ME7V2Cw==
