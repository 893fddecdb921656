// Tests start DuckDB, spawn the bin and log in through the real driver: more than jest's default 5 s.
jest.setTimeout(60_000);
