Signature-Version: 1
Key-ID: 928fb0cca01a9828
Public-Key: nh8kTBVHyadNRgJKFcu/GnOpSwylV17XBkxyeGTcuow=
Manifest-Digest: 71000901289aca9e6f9e16a3d1a1c82ae67989854f0809e431998f00d158a10b
Signed-At: 2026-01-02T03:04:06+00:00
Signature: WnlslRqOkUs5KNlEN5KJAc6V/KnE1fXvoWrs2GWk94gLt1Rhya3wzwkO9mpNDJF1z2+j3UlqKO1wd7ZKFVIpAg==
