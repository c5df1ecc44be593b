Signature-Version: 1
Key-ID: 928fb0cca01a9828
Public-Key: nh8kTBVHyadNRgJKFcu/GnOpSwylV17XBkxyeGTcuow=
Manifest-Digest: 3ffd277feb26a889e9738cf7d5c2730fb91e26e9cb14ddea2086bec0e8facc0a
Signed-At: 2026-01-02T03:04:06+00:00
Signature: u9vv31jTLgnoa8TY8II9bvQpo29aNO96HpUrK4XKScxobmQv97QbitxnnBIbfbLnJonWpGSNylszAlrOt3bKDA==
