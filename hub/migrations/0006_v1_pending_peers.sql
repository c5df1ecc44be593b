-- Peers that registered themselves through the original (v1) API when
-- WB_HUB_V1_AUTO_REGISTER is on wait as 'pending' until the hub admin approves them:
-- their bundles are parked, nothing they send is published.
ALTER TABLE hub_peers DROP CONSTRAINT hub_peers_status_check;
ALTER TABLE hub_peers ADD CONSTRAINT hub_peers_status_check
    CHECK (status IN ('active', 'blocked', 'pending'));
