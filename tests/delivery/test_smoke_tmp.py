from delivery.harness import Env, event


async def test_smoke(env: Env) -> None:
    hs_id = env.hubspot.add_contact(email="ann@example.com", firstname="Ann", lastname="Lee")
    await env.sync(event("contact.creation", hs_id))
    print(await env.decisions())
    print([(d.status, d.last_error, d.values) for d in await env.deliveries()])
    print(env.salesforce.find_by_email("ann@example.com"))
