"""SYNC_PUBLIC_SCOPE: who may let data leave the node (members, admins or nobody), the
publication requests an admin reviews, and the list of records still public after the
mode was lowered."""
