Signature-Version: 1
Key-ID: 928fb0cca01a9828
Public-Key: nh8kTBVHyadNRgJKFcu/GnOpSwylV17XBkxyeGTcuow=
Manifest-Digest: 2c08192fcfa2662f6f07f57320fecef0c874259545b5c8354b130f72d86f89fa
Signed-At: 2026-01-02T03:04:06+00:00
Signature: HqZfH2c9xjOUihqcrRw9axpiAxOdfi2vzLf2f3nVhTvNSdl5JW608ffGjX2e746HxdJynPfv9Xh/MH/Omqv4BQ==
