Signature-Version: 1
Key-ID: 928fb0cca01a9828
Public-Key: nh8kTBVHyadNRgJKFcu/GnOpSwylV17XBkxyeGTcuow=
Manifest-Digest: e9d19fd48aa3e3780d345f865d938187ed4adef084f7724bd36821f69c6b1c4f
Signed-At: 2026-01-02T03:04:06+00:00
Signature: rZYMgliBGFHpc31xuK5i3/LusZzW0n8+ikTjh5TvpRZUlzbuazGaynXuUkm8NLKu9pz0zDMURoj7L/7lExO4CA==
