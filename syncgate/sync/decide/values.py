"""How values of the two platforms compare."""

# Written by syncgate into required Salesforce fields HubSpot left blank; it means "no value".
NOT_PROVIDED = "[not provided]"


def same_value(left: object, right: object) -> bool:
    """Platform values compare as text, numerically when both are numbers; blank equals absent."""
    a = "" if left is None else str(left).strip()
    b = "" if right is None else str(right).strip()
    if a == b:
        return True
    if a.lower() in ("true", "false") or b.lower() in ("true", "false"):
        return a.lower() == b.lower()
    try:
        return float(a) == float(b)
    except ValueError:
        return False


def blank(value: object) -> bool:
    return value is None or str(value).strip() == ""


def blank_in_salesforce(value: object) -> bool:
    """Blank, or the placeholder syncgate writes for a required field HubSpot left blank."""
    return value is None or str(value).strip() in ("", NOT_PROVIDED)


def same_in_salesforce(salesforce_value: object, hubspot_value: object) -> bool:
    """`same_value`, where `[not provided]` in Salesforce is the blank it stands for."""
    if blank_in_salesforce(salesforce_value) and blank_in_salesforce(hubspot_value):
        return True
    return same_value(salesforce_value, hubspot_value)
