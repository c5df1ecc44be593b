Signature-Version: 1
Key-ID: 928fb0cca01a9828
Public-Key: nh8kTBVHyadNRgJKFcu/GnOpSwylV17XBkxyeGTcuow=
Manifest-Digest: 0c67c1bf4ec0a3c512e6ea018a3b3909e4154af4a4666b286f5e57751bd65fd6
Signed-At: 2026-01-02T03:04:06+00:00
Signature: cpBdQn5iEwjWTljHRBYCCROLHHvEpodg4bqg40gIcZfbbr2IzS/3bnPQ+ewptrRjuRa2hwWhQYjWdnw2eLsVCQ==
