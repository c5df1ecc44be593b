Signature-Version: 1
Key-ID: 928fb0cca01a9828
Public-Key: nh8kTBVHyadNRgJKFcu/GnOpSwylV17XBkxyeGTcuow=
Manifest-Digest: 68ee490c3adc13bfe1e63ae3ff6c6324b728ddeb57727c7c3a072d33904bccba
Signed-At: 2026-01-02T03:04:06+00:00
Signature: TrQg95H8NzREISwxhqz0z8A1onpW3OfkbyZfL6X5W/fJoGpou81UrgULVSACXePXPg82hAFiuiOYALUPs3+bDg==
