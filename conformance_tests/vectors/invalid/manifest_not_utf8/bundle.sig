Signature-Version: 1
Key-ID: 928fb0cca01a9828
Public-Key: nh8kTBVHyadNRgJKFcu/GnOpSwylV17XBkxyeGTcuow=
Manifest-Digest: 97b60e61c8261d1040546458165f2a7dd1ffb0e480c9619fbbae07d593adcfb3
Signed-At: 2026-01-02T03:04:06+00:00
Signature: WZKwUxEwR7+sRuyQbBOVRq1Cv5ajYIm9CqitM0w/b/1nWrRREPtSb9KQgMV08i0Lvm3dpqV8Kpl1dDvHbmKLBA==
