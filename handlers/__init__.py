from aiogram import Router

from handlers import (
    admin,
    admin_console,
    broadcast,
    errors,
    fallback,
    menu,
    otp,
    payments,
    smm,
    smm_form,
    wallet,
)


def get_routers() -> list[Router]:
    """Feature routers in order, new ones for each Dispatcher (see handlers/routing.py); the
    fallback router must stay last."""
    templates = [
        errors.router,
        admin.router,
        admin_console.router,
        broadcast.router,
        payments.router,  # before any text handler: a paid update is a message
        menu.router,
        wallet.router,
        otp.router,
        smm.router,  # the SMM section's entry (MenuAction.SMM) lives there
        smm_form.router,  # its order form: a state-filtered text handler, before the fallback
        fallback.router,
    ]
    return [template.build() for template in templates]
