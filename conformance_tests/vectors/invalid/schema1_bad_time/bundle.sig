Signature-Version: 1
Key-ID: 928fb0cca01a9828
Public-Key: nh8kTBVHyadNRgJKFcu/GnOpSwylV17XBkxyeGTcuow=
Manifest-Digest: ab4dfe7f3536486bb00a76d01b888a335b4555bfd598d9ce245965fb4f49cf03
Signed-At: 2026-01-02T03:04:06+00:00
Signature: ok5PDNGA1IlK8kk3RS5lZ6XBGOItXOWzNqUdR87yjWtiTHDbFxhOOF14Eo7I2F9c4SdMTeZkHPLuV/p3N1dhCg==
