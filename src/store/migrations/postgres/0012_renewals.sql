-- Renewal (证书更新): a renewal order names the order it renews (postgres).
ALTER TABLE orders ADD COLUMN renewal_of TEXT REFERENCES orders (order_no);
CREATE INDEX orders_by_renewal_of ON orders (renewal_of) WHERE renewal_of IS NOT NULL;
