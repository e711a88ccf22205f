-- Orders by company (USCC): the secondary-key rule and `order show` list a company's keys.
CREATE INDEX orders_by_uscc ON orders (uscc, submitted_at);
