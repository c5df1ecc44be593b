Signature-Version: 1
Key-ID: 928fb0cca01a9828
Public-Key: nh8kTBVHyadNRgJKFcu/GnOpSwylV17XBkxyeGTcuow=
Manifest-Digest: 69e81ef27f247073da378dfe4c8889cc2d1c9b3d4c5d307ebc53e0fcdf4cf9e5
Signed-At: 2026-01-02T03:04:06+00:00
Signature: atcnadn9IlNh8uQLlHMgr+MFrDf4MvwajEbcpOJNsGPOxpJu8XrfGA0qyAMiZfBgh8AI0s/NZnDPukZFhyDtBw==
