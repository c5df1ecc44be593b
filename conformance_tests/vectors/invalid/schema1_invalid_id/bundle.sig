Signature-Version: 1
Key-ID: 928fb0cca01a9828
Public-Key: nh8kTBVHyadNRgJKFcu/GnOpSwylV17XBkxyeGTcuow=
Manifest-Digest: eb08d9292879dffc4d9d489501eb8834396e41c82aab2ee2bd992191f90177c7
Signed-At: 2026-01-02T03:04:06+00:00
Signature: 7AfUWKEV1UrxEDvBLnUfg1ik0D4jVJOyK63OBVMX9ovFjImYR8ZICiSKIlnPYKvwgKmVLubv7irg+a5Lp+1RAw==
