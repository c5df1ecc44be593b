Signature-Version: 1
Key-ID: 928fb0cca01a9828
Public-Key: nh8kTBVHyadNRgJKFcu/GnOpSwylV17XBkxyeGTcuow=
Manifest-Digest: 51923ef5612fea9b597aa1fd86aa9ee3b14b49a5ed062c05ab8b009e790a2314
Signed-At: 2026-01-02T03:04:06+00:00
Signature: PlwIGm3c/Ps93OtHMVurXo5vQ9eSzi8WRFJYomM88E40J4AVIGk3j7gvI5LxEWo5bA12qYPPnnFXV+TZSGX5DQ==
