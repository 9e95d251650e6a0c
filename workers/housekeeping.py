"""Moved beside their contexts (issue 18 item 6): the purge of sign-in data to
``app/accounts/tasks.py``, the photo store's to ``app/complaints/tasks.py``. These names
stay for the imports that still use them."""

from app.accounts.tasks import OTP_KEEP, purge_expired_sign_in_data
from app.complaints.tasks import (
    ORPHAN_MIN_AGE,
    PHOTO_PREFIX,
    delete_orphaned_objects,
    photo_id_of,
    purge_orphaned_objects,
)

__all__ = [
    "ORPHAN_MIN_AGE",
    "OTP_KEEP",
    "PHOTO_PREFIX",
    "delete_orphaned_objects",
    "photo_id_of",
    "purge_expired_sign_in_data",
    "purge_orphaned_objects",
]
