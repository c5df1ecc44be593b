Signature-Version: 1
Key-ID: 928fb0cca01a9828
Public-Key: nh8kTBVHyadNRgJKFcu/GnOpSwylV17XBkxyeGTcuow=
Manifest-Digest: d480d9d25e45ed81192998bd553cdb062498cbce6fb8cd54a73521d70ca68285
Signed-At: 2026-01-02T03:04:06+00:00
Signature: 7Cqb2Ihej/+mj1bpPadZAXw6AbLds8regiPr1dhOsQhqv043CVV8/SvhLItDQ4ocGrWXiE5ra5jIGL0rliswCw==
