Signature-Version: 1
Key-ID: 928fb0cca01a9828
Public-Key: nh8kTBVHyadNRgJKFcu/GnOpSwylV17XBkxyeGTcuow=
Manifest-Digest: 7d2b1d78b480851a9e8570b275e265e44a2154f61f381efacd4b06c093182603
Signed-At: 2026-01-02T03:04:06+00:00
Signature: /wMJcC32qRF0EdEN1lbrT7fNuSdnAyHCfDBxmz87th8eePcpe8dKD8fk9EP6NoWTrFEhr/oUT44FBeZBlM6sCQ==
