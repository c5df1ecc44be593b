Signature-Version: 1
Key-ID: 928fb0cca01a9828
Public-Key: nh8kTBVHyadNRgJKFcu/GnOpSwylV17XBkxyeGTcuow=
Manifest-Digest: 2e4b96d6febd310a95fe9e856bfacd78cc4cf5a922bdb3866921573077db1812
Signed-At: 2026-01-02T03:04:06+00:00
Signature: D1Y1ECIAK52v7fRAXVmbwOHTXMKC8fXXDm5eb+hBPcG4ud4NZLPIiNFgAaafksuoVMOHim1g2R2fbfI7l+abCA==
