Signature-Version: 1
Key-ID: 928fb0cca01a9828
Public-Key: nh8kTBVHyadNRgJKFcu/GnOpSwylV17XBkxyeGTcuow=
Manifest-Digest: 393c9bac3f8cebfdcbe5111e38e8fbd527084d3cc9bbae7dc5a0aa5909b365c4
Signed-At: 2026-01-02T03:04:06+00:00
Signature: 012LhsgELbL2CfNcqIEiaViqCEQlC+xH//bW1PsxAXlJmvC2u5dbFCtKHqrQ44mJ+PGkpBEOchkLBWfJ4Pb6Cw==
