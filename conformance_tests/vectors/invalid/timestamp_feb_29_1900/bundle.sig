Signature-Version: 1
Key-ID: 928fb0cca01a9828
Public-Key: nh8kTBVHyadNRgJKFcu/GnOpSwylV17XBkxyeGTcuow=
Manifest-Digest: 41eca6d3e2961121ea1b00e79ade3eec52553363b4412b26a5514c7050f132db
Signed-At: 2026-01-02T03:04:06+00:00
Signature: 7VmFubIWucpf5cwo8k/IeGYYU03nj4esFKrthLseF6fEPzSHCMBCdxVY+Nck7v5yiig7SfGmSoWx9Fd+TeSNDQ==
