Signature-Version: 1
Key-ID: 928fb0cca01a9828
Public-Key: nh8kTBVHyadNRgJKFcu/GnOpSwylV17XBkxyeGTcuow=
Manifest-Digest: f396cd99075caee9e9848e24fa8d80a09423e973d588dc6482a0be25efa277a5
Signed-At: 2026-01-02T03:04:06+00:00
Signature: Stjv9u0mJ3xFBMfh1GPYIkdCB1Ijn4lO5PXNWFq2mD+c//DFt0SldO87o3djA0wmmeBcmKrTwvcjwsamyVLADg==
