Signature-Version: 1
Key-ID: 928fb0cca01a9828
Public-Key: nh8kTBVHyadNRgJKFcu/GnOpSwylV17XBkxyeGTcuow=
Manifest-Digest: 2feccd031d7b88c573416e31aaf592a969b6197c4795ecddde0ec8cabd3ba3b1
Signed-At: 2026-01-02T03:04:06+00:00
Signature: eOEPZg8hBgB4AYSewmgtniTutiCSOxaHL7z0pxuD1kwlbfQsrkMnTYpJl/ALh/0AnxoT5am6F+X3W7VuCLoHBw==
