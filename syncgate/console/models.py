"""Console sessions ended by signing out (the sessions themselves are signed cookies)."""

from datetime import datetime

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from syncgate.models import Base, UTCDateTime


class ConsoleSignOut(Base):
    """A signed-out session's cookie, refused until it would have expired anyway.

    The table lives in the database every replica shares, so a sign-out holds on all of them.
    """

    __tablename__ = "console_sign_outs"

    # SHA-256 of the cookie value: the row alone does not make a usable cookie.
    session_digest: Mapped[str] = mapped_column(String(64), primary_key=True)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
