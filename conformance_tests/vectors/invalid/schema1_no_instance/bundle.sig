Signature-Version: 1
Key-ID: 928fb0cca01a9828
Public-Key: nh8kTBVHyadNRgJKFcu/GnOpSwylV17XBkxyeGTcuow=
Manifest-Digest: e416a00005c0809e7ccf892bbb69f7041e8d6b58f33ba91e516f672bd83583e2
Signed-At: 2026-01-02T03:04:06+00:00
Signature: eSBkiHFDuw81TMWLCbyp4+/19zmVdqG1T+LNo3kviSufpgVuyOI2C1wOeuGou9v8DJxbYgUw9ENWnsD7IcByAA==
