Signature-Version: 1
Key-ID: 928fb0cca01a9828
Public-Key: nh8kTBVHyadNRgJKFcu/GnOpSwylV17XBkxyeGTcuow=
Manifest-Digest: 934daf79801d524bef9af63acfe37cf3943d8bb0854c15bdefa9e8748735cbde
Signed-At: 2026-01-02T03:04:06+00:00
Signature: XdLXZqbVn5+gONbIxqx/oRTGxe33LuGA1lHPcMps8o+lBvY9zfSaQM7YMai9NP3GREcGOrQHQFkLcD9fYLyyAg==
