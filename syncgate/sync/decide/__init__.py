"""What happens to a change: pure rules, no I/O (CONTRACT §5).

- `outcomes`: the decisions, the outcome of a change, the contact's place in the segment;
- `values`: how platform values compare (blank, `[not provided]`, numbers, booleans);
- `hubspot_change`: a change in HubSpot → what goes to Salesforce (pre-gate outcomes, the gate,
  resync), and the builder of its input from the mirror;
- `salesforce_change`: a Salesforce notification → what goes to HubSpot (pre-gate outcomes,
  echoes, the gate, import), and the builder of its input from the mirror;
- `salesforce_record`: the fields a forwarded change writes into a Salesforce record.

Processing rounds, resync, import and delivery all decide through these functions only.
"""
