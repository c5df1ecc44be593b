Signature-Version: 1
Key-ID: 928fb0cca01a9828
Public-Key: nh8kTBVHyadNRgJKFcu/GnOpSwylV17XBkxyeGTcuow=
Manifest-Digest: a09938c8747306f10cc88e60a6b3a18d4e832ee7a30ed940d0cca93011a500d5
Signed-At: 2026-01-02T03:04:06+00:00
Signature: njfyEt5+IT1ltOgrHJahI7t9SRkYk3GnQlLzrmDNXRahgymVmxds10SjOUY5kC4msAvTVyc2Ey72ZoEwcbDwDQ==
