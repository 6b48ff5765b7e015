"""Processing the inbox: one path for every event.

inbox ─▶ claim.py   lease a round of due events, parse each payload once,
         │          load the round's settings, mappings and active segments
         ├▶ claim.py   read ahead: created and first-seen contacts from HubSpot (batched)
         ▼
round.py  one transaction: sync.batch loads the contacts, memberships and queued
         │  deliveries in a few set queries (locked)
         ├▶ apply.py   per event, in memory: mirror → segments → sync.decide → queue
         ▼
sync.batch writes back in bulk: contacts, properties, deliveries, decisions, memberships
"""
