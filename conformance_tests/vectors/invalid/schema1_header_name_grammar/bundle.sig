Signature-Version: 1
Key-ID: 928fb0cca01a9828
Public-Key: nh8kTBVHyadNRgJKFcu/GnOpSwylV17XBkxyeGTcuow=
Manifest-Digest: 985021b087be13c3e76b01e1380380a739f57857ea08c3415d08ffc9cb3d24ba
Signed-At: 2026-01-02T03:04:06+00:00
Signature: MZP3Hs8MWGeLyYar8vz5bpkw6N4YBxnvjn3dHOh3Ouvm74+QDZFVXSRFbl4twudB0Y/8aQdTaCzLIZWDdqYJDw==
