-- Runs once, when the PostgreSQL volume is first initialised: the node uses the
-- database named by POSTGRES_DB (wb_node); the hub gets its own database.
CREATE DATABASE wb_hub;
