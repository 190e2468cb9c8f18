from aiogram import Router

from handlers import admin, admin_console, broadcast, errors, fallback, menu, otp, smm, wallet


def get_routers() -> list[Router]:
    """Feature routers in order; the fallback router must stay last.

    Routers are module-level (aiogram's style), but tests build several Dispatchers in one
    process, so a router still attached to an earlier Dispatcher is detached first.
    """
    routers = [
        errors.router,
        admin.router,
        admin_console.router,
        broadcast.router,
        menu.router,
        wallet.router,
        otp.router,
        smm.router,  # the SMM section's entry (MenuAction.SMM) lives there
        fallback.router,
    ]
    for router in routers:
        previous = router.parent_router
        if previous is not None:
            previous.sub_routers.remove(router)
            router._parent_router = None
    return routers
