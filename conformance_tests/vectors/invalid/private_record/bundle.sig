Signature-Version: 1
Key-ID: 928fb0cca01a9828
Public-Key: nh8kTBVHyadNRgJKFcu/GnOpSwylV17XBkxyeGTcuow=
Manifest-Digest: cb4ab23658ffe47d701a0cf28396041d33832b066b62481dafc0fe569f384327
Signed-At: 2026-01-02T03:04:06+00:00
Signature: HvVXp/lBxnAnh59APUjsaIOpjmY4fEx8bDhTiyIe5+8fQG8pWUdiFe1eRgMgAR8tnVyNQMkhKs747jd3UT5/DA==
