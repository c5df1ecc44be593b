Signature-Version: 1
Key-ID: 928fb0cca01a9828
Public-Key: nh8kTBVHyadNRgJKFcu/GnOpSwylV17XBkxyeGTcuow=
Manifest-Digest: ffdd231ebb5cf8fc038f8bb6bc9c9e1d82ea7213a7e584873a9d3d639e229be8
Signed-At: 2026-01-02T03:04:06+00:00
Signature: pEmSZF9NIaFw+ioqGHc9ggSMQmvoB+Y2vP5hQg4Zmvv/dA3swA/5rA9wvDKbhlEZJe6usnK1zpz+ektqqJubDA==
