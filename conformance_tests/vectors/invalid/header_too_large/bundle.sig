Signature-Version: 1
Key-ID: 928fb0cca01a9828
Public-Key: nh8kTBVHyadNRgJKFcu/GnOpSwylV17XBkxyeGTcuow=
Manifest-Digest: 03771f7052176e370ee1434b846f6b743c14d083f2574d4755946686ea15b4d1
Signed-At: 2026-01-02T03:04:06+00:00
Signature: V7Rk/HNrw3fz8TSpbijdeJbYs079nkHwJo1d9Wjuz4SXEN3TdCe+lK46n1/+tDFm0LDXl+rj7FXqGQIz2IsPAw==
