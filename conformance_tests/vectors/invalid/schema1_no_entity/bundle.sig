Signature-Version: 1
Key-ID: 928fb0cca01a9828
Public-Key: nh8kTBVHyadNRgJKFcu/GnOpSwylV17XBkxyeGTcuow=
Manifest-Digest: 3da4ceb40b77ea033d70545687ac3a30081580ff0b97f0800413b966daaadf03
Signed-At: 2026-01-02T03:04:06+00:00
Signature: tAgZ0L0ESnRrBuqCa0EYSCOe4q6w8hZKXZ3VjMO0GnvtIpBwswGy5wJBNO2Vu1p4P8Tllho+DkGJjPoaSWETBg==
